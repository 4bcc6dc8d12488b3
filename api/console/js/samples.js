// Labelled samples for calibration read from a file, as `semsearch calibrate` reads them
// (api/samples.py): JSON Lines or CSV with a header, either shape.
//   queries: {"query": "...", "relevant": ["doc-id", ...]}, CSV query,relevant (ids split by |)
//   pairs:   {"a": "...", "b": "...", "match": true},      CSV a,b,match (1/0, true/false, yes/no)
// The shape is read from the first record.

const RELEVANT_SEPARATOR = "|";
const TRUE = new Set(["1", "true", "yes"]);
const FALSE = new Set(["0", "false", "no"]);

/** A file that cannot be read as samples; `line` is 1-based. */
export class SamplesError extends Error {
  constructor(line, problem) {
    super(problem);
    this.name = "SamplesError";
    this.line = line;
    this.problem = problem;
  }
}

/** {shape: "queries" | "pairs", samples: [...]} from the file's name and text. */
export function parseSamples(fileName, text) {
  const records = /\.csv$/i.test(fileName) ? csvRecords(text) : jsonLinesRecords(text);
  if (records.length === 0) throw new SamplesError(1, "no samples in it");
  const [firstLine, first] = records[0];
  if ("query" in first) {
    return { shape: "queries", samples: records.map(([line, record]) => querySample(line, record)) };
  }
  if ("a" in first && "b" in first) {
    return { shape: "pairs", samples: records.map(([line, record]) => pairSample(line, record)) };
  }
  throw new SamplesError(
    firstLine,
    `a sample needs query and relevant, or a, b and match; found ${JSON.stringify(Object.keys(first).sort())}`,
  );
}

function querySample(line, record) {
  const query = text(line, record, "query");
  if (!Array.isArray(record.relevant) || !record.relevant.every((id) => typeof id === "string")) {
    throw new SamplesError(line, "relevant: a list of document ids ([] for an out-of-scope query)");
  }
  return { query, relevant: record.relevant };
}

function pairSample(line, record) {
  if (typeof record.match !== "boolean") {
    throw new SamplesError(line, "match: true or false");
  }
  return { a: text(line, record, "a"), b: text(line, record, "b"), match: record.match };
}

function text(line, record, field) {
  const value = record[field];
  if (typeof value !== "string" || value.length === 0) {
    throw new SamplesError(line, `${field}: a non-empty text`);
  }
  return value;
}

function jsonLinesRecords(content) {
  const records = [];
  content.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    if (!raw.trim()) return;
    let record;
    try {
      record = JSON.parse(raw);
    } catch (error) {
      throw new SamplesError(line, `not JSON (${error.message})`);
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      throw new SamplesError(line, "a sample is a JSON object");
    }
    records.push([line, record]);
  });
  return records;
}

function csvRecords(content) {
  const rows = csvRows(content.replace(/^\uFEFF/, ""));
  if (rows.length === 0) return [];
  const header = rows[0].cells.map((name) => name.trim().toLowerCase());
  const records = [];
  for (const { line, cells } of rows.slice(1)) {
    if (cells.length === 1 && cells[0] === "") continue; // a blank line
    const record = {};
    header.forEach((name, index) => {
      record[name] = cells[index] ?? "";
    });
    if ("relevant" in record) {
      record.relevant = record.relevant
        .split(RELEVANT_SEPARATOR)
        .map((id) => id.trim())
        .filter(Boolean);
    }
    if ("match" in record) record.match = boolean(record.match, line);
    records.push([line, record]);
  }
  return records;
}

function boolean(value, line) {
  const word = value.trim().toLowerCase();
  if (TRUE.has(word)) return true;
  if (FALSE.has(word)) return false;
  throw new SamplesError(line, `match ${JSON.stringify(value)} is not 1/0, true/false or yes/no`);
}

/** RFC 4180 rows: quoted fields may hold commas, doubled quotes and line breaks. */
function csvRows(content) {
  const rows = [];
  let cells = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let index = 0; index < content.length; index += 1) {
    const char = content[index];
    if (quoted) {
      if (char === '"' && content[index + 1] === '"') {
        field += '"';
        index += 1;
      } else if (char === '"') {
        quoted = false;
      } else {
        if (char === "\n") line += 1;
        field += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ",") {
      cells.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && content[index + 1] === "\n") index += 1;
      cells.push(field);
      rows.push({ line: rowLine, cells });
      cells = [];
      field = "";
      line += 1;
      rowLine = line;
    } else {
      field += char;
    }
  }
  if (field !== "" || cells.length > 0) {
    cells.push(field);
    rows.push({ line: rowLine, cells });
  }
  return rows;
}
