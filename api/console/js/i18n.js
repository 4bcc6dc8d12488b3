// Every string the console shows, in English and Chinese; the choice is kept in localStorage.

const STORAGE_KEY = "semsearch.language";
const LANGUAGES = ["en", "zh"];

export const MESSAGES = {
  en: {
    "app.title": "semsearch console",
    "nav.label": "Pages",
    "nav.similarity": "Similarity",
    "nav.search": "Search",
    "nav.collections": "Collections",
    "nav.upload": "Upload",
    "nav.calibration": "Calibration",
    "lang.toggleLabel": "切换到中文 (switch to Chinese)",
    "lang.other": "中文",
    "key.label": "API key",
    "key.placeholder": "ssk_… (if required)",
    "key.save": "Save key",
    "key.forget": "Forget",
    "key.saved": "The key is kept in this browser and sent with every request.",
    "key.forgotten": "The key is removed from this browser.",
    "auth.required":
      "This service needs an API key: enter it in the API key field above and save it. " +
      "Keys are made with `semsearch keys create`.",
    "auth.rejected": "The service refused the key: {detail}",
    "common.collection": "Collection",
    "common.model": "Model",
    "common.threshold": "Threshold",
    "common.mode": "Mode",
    "common.none": "none",
    "common.defaultModel": "{model} (default)",
    "common.noCollections": "No collection yet: create one on the Collections page.",
    "common.error": "{detail}",
    "common.networkError": "The service cannot be reached ({detail}).",
    "common.forbidden": "Not allowed with this key: {detail}",
    "similarity.title": "Similarity tester",
    "similarity.intro":
      "How similar are two texts? Both are cleaned first; A is embedded as a query and B as a " +
      "stored chunk, and the score is their cosine: the number a threshold is compared with.",
    "similarity.a": "Sentence A (embedded as a query)",
    "similarity.b": "Sentence B (embedded as a stored chunk)",
    "similarity.collection": "Or score as a collection does (its model and term map)",
    "similarity.compare": "Compare",
    "similarity.score": "Score",
    "similarity.embeddedA": "A as embedded",
    "similarity.embeddedB": "B as embedded",
    "similarity.unchanged": "unchanged by cleaning",
    "similarity.byModel": "Scored by {model}.",
    "similarity.byCollection": "Scored as collection {collection} does: {model} and its term map.",
    "similarity.above": "At or above the collection's threshold {threshold}: a search would return B.",
    "similarity.below": "Below the collection's threshold {threshold}: a search would not return B.",
    "search.title": "Search playground",
    "search.query": "Query",
    "search.topK": "Hits at most",
    "search.modeCollection": "the collection's",
    "search.unit": "Results",
    "search.unitPassage": "passages",
    "search.unitDocument": "whole documents",
    "search.unitDocumentFact": "whole documents, ranked by their mean chunk vector",
    "search.filter": "Filter (JSON, optional)",
    "search.filterHint": "{\"team\": \"accounts\"} or {\"must\": [{\"key\": \"price\", \"range\": {\"lt\": 50}}]}",
    "search.filterInvalid": "The filter is not a JSON object: {detail}",
    "search.run": "Search",
    "search.embedded": "Query as embedded",
    "search.model": "Model",
    "search.mode": "Mode",
    "search.collectionThreshold": "Collection threshold",
    "search.warning": "Warning",
    "search.tryThreshold": "Try a threshold",
    "search.count": "{shown} of {total} hits at or above {threshold}",
    "search.none": "No hit at or above this threshold.",
    "search.belowCollection": "below the collection's threshold",
    "search.saveThreshold": "Set {threshold} as the collection's threshold",
    "search.thresholdSaved": "The threshold of {collection} is now {threshold}.",
    "search.hitWhere": "{document}, chunk {chunk}",
    "search.hitChunk": "chunk {chunk}",
    "search.hitDocument": "whole document",
    "search.scoreLabel": "score {score}, collection threshold {threshold}",
    "collections.title": "Collections",
    "collections.list": "All collections (choose one to see and change it)",
    "collections.name": "Name",
    "collections.nameHint": "letters, digits, _ or -",
    "collections.documents": "Documents",
    "collections.create": "Create a collection",
    "collections.thresholdHint": "the model's default",
    "collections.createButton": "Create",
    "collections.created": "Collection {name} created.",
    "collections.detail": "Collection {name}",
    "collections.effectiveMode": "Searches in",
    "collections.chunking": "Chunks",
    "collections.chunkingValue": "{tokens} tokens at most, {overlap} sentences of overlap",
    "collections.reindexing": "Re-indexing",
    "collections.languageWarning": "Language",
    "collections.saveThreshold": "Save threshold",
    "collections.thresholdSaved": "The threshold of {name} is now {threshold}.",
    "collections.termMap": "Term map",
    "collections.termMapHint":
      "Rewrites terms in queries and documents alike, longest match first. Saving re-embeds " +
      "the collection from its stored text; searches use the current vectors until it is done.",
    "collections.term": "Term",
    "collections.replacement": "Replacement",
    "collections.addTerm": "Add a term",
    "collections.removeTerm": "Remove",
    "collections.removeTermOf": "Remove the term {term}",
    "collections.saveTermMap": "Save term map",
    "collections.termMapSaved": "Term map saved: the collection is being re-indexed.",
    "collections.termMapUnchanged": "The term map is unchanged.",
    "collections.termIncomplete": "Each term needs a replacement (row {row}).",
    "collections.jobs": "Recent jobs",
    "collections.noJobs": "No job yet.",
    "collections.delete": "Delete collection",
    "collections.confirmDelete": "Delete collection {name}, its documents and vectors?",
    "collections.deleted": "Collection {name} deleted.",
    "job.kind.ingest": "Ingest",
    "job.kind.reindex": "Re-index",
    "job.status.queued": "queued",
    "job.status.running": "running",
    "job.status.succeeded": "succeeded",
    "job.status.failed": "failed",
    "job.progress": "{done} of {total} documents, {chunks} chunks",
    "job.parts": "split into {parts} parts that the workers share",
    "job.progressLabel": "Progress of job {job}",
    "job.title": "{kind} {status}",
    "job.started": "{time}",
    "upload.title": "Upload",
    "upload.drop": "Drop files here: text, Markdown, HTML, PDF and Word files become a document each, its id the file name; each row of a CSV, TSV or JSON Lines file becomes one.",
    "upload.choose": "Choose files",
    "upload.remove": "Remove",
    "upload.removeFile": "Remove {file}",
    "upload.fileSize": "{size}",
    "upload.paste": "Or paste text (one document)",
    "upload.pasteId": "Id of the pasted document",
    "upload.pasteIdHint": "pasted-{time}",
    "upload.send": "Add to collection",
    "upload.nothing": "Drop a file or paste some text first.",
    "upload.failed": "{file} was not read: {reason}",
    "upload.empty": "{file} is empty; skipped.",
    "upload.sent": "{count} documents sent to {collection}.",
    "calibration.title": "Calibration",
    "calibration.intro":
      "Run labelled samples through a collection's search, see precision and recall at every " +
      "threshold, and pick the threshold to keep.",
    "calibration.file": "Labelled samples (.jsonl or .csv)",
    "calibration.formats":
      "JSON Lines: {\"query\": \"…\", \"relevant\": [\"doc-id\"]} (an empty list for a question the " +
      "collection should not answer) or {\"a\": \"…\", \"b\": \"…\", \"match\": true}. CSV with a " +
      "header: query,relevant (ids separated by |) or a,b,match (1/0, true/false, yes/no).",
    "calibration.loaded": "{count} samples: {shape}.",
    "calibration.shape.queries": "queries with the documents that answer them",
    "calibration.shape.pairs": "pairs of texts that match or not",
    "calibration.badFile": "{file}, line {line}: {problem}",
    "calibration.noFile": "Choose a samples file first.",
    "calibration.goal": "Goal",
    "calibration.goalF1": "the best F1",
    "calibration.goalPrecision": "precision at least",
    "calibration.goalRecall": "recall at least",
    "calibration.goalValue": "Value",
    "calibration.run": "Calibrate",
    "calibration.running": "Running {count} samples through the search of {collection}…",
    "calibration.summary":
      "{collection} ({model}, {mode}): threshold {threshold} chosen for {goal}. On the samples: " +
      "precision {precision}, recall {recall}. On held-out samples: precision {heldPrecision}, " +
      "recall {heldRecall}.",
    "calibration.last": "Last calibration, {date}.",
    "calibration.stale": "Changed since: {what}.",
    "calibration.curveLabel": "Precision, recall and rejection of out-of-scope samples over thresholds",
    "calibration.precision": "precision",
    "calibration.recall": "recall",
    "calibration.rejection": "rejection",
    "calibration.threshold": "threshold",
    "calibration.chosen": "chosen",
    "calibration.current": "current",
    "calibration.pick": "Click a point of the curve to pick its threshold.",
    "calibration.pointLabel": "threshold {threshold}: precision {precision}, recall {recall}",
    "calibration.picked":
      "Threshold {threshold}: precision {precision}, recall {recall}, F1 {f1}.",
    "calibration.apply": "Set {threshold} as the threshold of {collection}",
    "calibration.applied": "The threshold of {collection} is now {threshold}.",
  },
  zh: {
    "app.title": "semsearch 控制台",
    "nav.label": "页面",
    "nav.similarity": "相似度",
    "nav.search": "搜索",
    "nav.collections": "集合",
    "nav.upload": "上传",
    "nav.calibration": "阈值校准",
    "lang.toggleLabel": "Switch to English（切换到英文）",
    "lang.other": "English",
    "key.label": "API 密钥",
    "key.placeholder": "ssk_…（如需要）",
    "key.save": "保存密钥",
    "key.forget": "清除",
    "key.saved": "密钥已保存在此浏览器中，每个请求都会带上它。",
    "key.forgotten": "已从此浏览器中清除密钥。",
    "auth.required":
      "此服务需要 API 密钥：请在上方的 API 密钥栏中输入并保存。密钥用 `semsearch keys create` 创建。",
    "auth.rejected": "服务拒绝了此密钥：{detail}",
    "common.collection": "集合",
    "common.model": "模型",
    "common.threshold": "阈值",
    "common.mode": "模式",
    "common.none": "无",
    "common.defaultModel": "{model}（默认）",
    "common.noCollections": "还没有集合：请在“集合”页创建一个。",
    "common.error": "{detail}",
    "common.networkError": "无法连接服务（{detail}）。",
    "common.forbidden": "此密钥无权执行该操作：{detail}",
    "similarity.title": "相似度测试",
    "similarity.intro":
      "两段文本有多相似？两者先经过清洗；A 作为查询、B 作为已存文本块进行向量化，" +
      "分数是两者的余弦相似度，也就是与阈值比较的那个数。",
    "similarity.a": "句子 A（作为查询向量化）",
    "similarity.b": "句子 B（作为已存文本块向量化）",
    "similarity.collection": "或按某个集合的方式打分（其模型与术语映射）",
    "similarity.compare": "比较",
    "similarity.score": "分数",
    "similarity.embeddedA": "A 实际向量化的文本",
    "similarity.embeddedB": "B 实际向量化的文本",
    "similarity.unchanged": "清洗后未变",
    "similarity.byModel": "由 {model} 打分。",
    "similarity.byCollection": "按集合 {collection} 的方式打分：{model} 及其术语映射。",
    "similarity.above": "达到集合阈值 {threshold}：搜索会返回 B。",
    "similarity.below": "低于集合阈值 {threshold}：搜索不会返回 B。",
    "search.title": "搜索试验场",
    "search.query": "查询",
    "search.topK": "最多结果数",
    "search.modeCollection": "集合默认",
    "search.unit": "结果",
    "search.unitPassage": "段落",
    "search.unitDocument": "整篇文档",
    "search.unitDocumentFact": "整篇文档，按其文本块向量的均值排序",
    "search.filter": "过滤条件（JSON，可选）",
    "search.filterHint": "{\"team\": \"accounts\"} 或 {\"must\": [{\"key\": \"price\", \"range\": {\"lt\": 50}}]}",
    "search.filterInvalid": "过滤条件不是 JSON 对象：{detail}",
    "search.run": "搜索",
    "search.embedded": "实际向量化的查询",
    "search.model": "模型",
    "search.mode": "模式",
    "search.collectionThreshold": "集合阈值",
    "search.warning": "提示",
    "search.tryThreshold": "试用阈值",
    "search.count": "{total} 条结果中有 {shown} 条达到 {threshold}",
    "search.none": "没有达到此阈值的结果。",
    "search.belowCollection": "低于集合阈值",
    "search.saveThreshold": "将 {threshold} 设为集合阈值",
    "search.thresholdSaved": "{collection} 的阈值已设为 {threshold}。",
    "search.hitWhere": "{document}，第 {chunk} 块",
    "search.hitChunk": "第 {chunk} 块",
    "search.hitDocument": "整篇文档",
    "search.scoreLabel": "分数 {score}，集合阈值 {threshold}",
    "collections.title": "集合",
    "collections.list": "全部集合（选择一个以查看和修改）",
    "collections.name": "名称",
    "collections.nameHint": "字母、数字、_ 或 -",
    "collections.documents": "文档数",
    "collections.create": "创建集合",
    "collections.thresholdHint": "模型默认值",
    "collections.createButton": "创建",
    "collections.created": "已创建集合 {name}。",
    "collections.detail": "集合 {name}",
    "collections.effectiveMode": "实际搜索模式",
    "collections.chunking": "分块",
    "collections.chunkingValue": "每块最多 {tokens} 个词元，重叠 {overlap} 句",
    "collections.reindexing": "正在重建索引",
    "collections.languageWarning": "语言",
    "collections.saveThreshold": "保存阈值",
    "collections.thresholdSaved": "{name} 的阈值已设为 {threshold}。",
    "collections.termMap": "术语映射",
    "collections.termMapHint":
      "在查询和文档中同样替换术语，最长匹配优先。保存后会用已存原文重新向量化整个集合；" +
      "完成之前，搜索仍使用当前向量。",
    "collections.term": "术语",
    "collections.replacement": "替换为",
    "collections.addTerm": "添加术语",
    "collections.removeTerm": "删除",
    "collections.removeTermOf": "删除术语 {term}",
    "collections.saveTermMap": "保存术语映射",
    "collections.termMapSaved": "术语映射已保存：正在重建集合索引。",
    "collections.termMapUnchanged": "术语映射没有变化。",
    "collections.termIncomplete": "每个术语都需要替换文本（第 {row} 行）。",
    "collections.jobs": "最近任务",
    "collections.noJobs": "暂无任务。",
    "collections.delete": "删除集合",
    "collections.confirmDelete": "删除集合 {name} 及其全部文档和向量？",
    "collections.deleted": "已删除集合 {name}。",
    "job.kind.ingest": "导入",
    "job.kind.reindex": "重建索引",
    "job.status.queued": "排队中",
    "job.status.running": "进行中",
    "job.status.succeeded": "已完成",
    "job.status.failed": "失败",
    "job.progress": "文档 {done}/{total}，文本块 {chunks}",
    "job.parts": "已拆分为 {parts} 个部分，由各工作进程分担",
    "job.progressLabel": "任务 {job} 的进度",
    "job.title": "{kind}：{status}",
    "job.started": "{time}",
    "upload.title": "上传",
    "upload.drop": "将文件拖到这里：文本、Markdown、HTML、PDF 和 Word 文件各成为一个文档，文件名即文档 ID；CSV、TSV 或 JSON Lines 文件的每一行成为一个文档。",
    "upload.choose": "选择文件",
    "upload.remove": "移除",
    "upload.removeFile": "移除 {file}",
    "upload.fileSize": "{size}",
    "upload.paste": "或粘贴文本（作为一个文档）",
    "upload.pasteId": "粘贴文档的 ID",
    "upload.pasteIdHint": "pasted-{time}",
    "upload.send": "添加到集合",
    "upload.nothing": "请先拖入文件或粘贴文本。",
    "upload.failed": "{file} 未能读取：{reason}",
    "upload.empty": "{file} 是空文件，已跳过。",
    "upload.sent": "已向 {collection} 发送 {count} 个文档。",
    "calibration.title": "阈值校准",
    "calibration.intro": "用带标注的样本跑一遍集合的搜索，查看每个阈值下的精确率和召回率，再选定要用的阈值。",
    "calibration.file": "标注样本（.jsonl 或 .csv）",
    "calibration.formats":
      "JSON Lines：{\"query\": \"…\", \"relevant\": [\"文档ID\"]}（集合不应回答的问题用空列表）或 " +
      "{\"a\": \"…\", \"b\": \"…\", \"match\": true}。带表头的 CSV：query,relevant（多个 ID 用 | 分隔）" +
      "或 a,b,match（1/0、true/false、yes/no）。",
    "calibration.loaded": "{count} 个样本：{shape}。",
    "calibration.shape.queries": "查询及回答它的文档",
    "calibration.shape.pairs": "是否匹配的文本对",
    "calibration.badFile": "{file} 第 {line} 行：{problem}",
    "calibration.noFile": "请先选择样本文件。",
    "calibration.goal": "目标",
    "calibration.goalF1": "最佳 F1",
    "calibration.goalPrecision": "精确率至少",
    "calibration.goalRecall": "召回率至少",
    "calibration.goalValue": "数值",
    "calibration.run": "校准",
    "calibration.running": "正在用 {collection} 的搜索运行 {count} 个样本…",
    "calibration.summary":
      "{collection}（{model}，{mode}）：为{goal}选定阈值 {threshold}。样本上：精确率 {precision}，" +
      "召回率 {recall}。留出样本上：精确率 {heldPrecision}，召回率 {heldRecall}。",
    "calibration.last": "上次校准：{date}。",
    "calibration.stale": "此后有变化：{what}。",
    "calibration.curveLabel": "各阈值下的精确率、召回率和范围外样本拒绝率",
    "calibration.precision": "精确率",
    "calibration.recall": "召回率",
    "calibration.rejection": "拒绝率",
    "calibration.threshold": "阈值",
    "calibration.chosen": "选定",
    "calibration.current": "当前",
    "calibration.pick": "点击曲线上的点以选用其阈值。",
    "calibration.pointLabel": "阈值 {threshold}：精确率 {precision}，召回率 {recall}",
    "calibration.picked": "阈值 {threshold}：精确率 {precision}，召回率 {recall}，F1 {f1}。",
    "calibration.apply": "将 {threshold} 设为 {collection} 的阈值",
    "calibration.applied": "{collection} 的阈值已设为 {threshold}。",
  },
};

const listeners = new Set();
let current = initialLanguage();

function initialLanguage() {
  const kept = readStorage();
  if (LANGUAGES.includes(kept)) return kept;
  const preferred = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
  return preferred.toLowerCase().startsWith("zh") ? "zh" : "en";
}

function readStorage() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: the choice lasts for this page only
  }
}

export function language() {
  return current;
}

/** The message `key` in the current language, `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  const template = MESSAGES[current][key] ?? MESSAGES.en[key];
  if (template === undefined) {
    console.warn(`i18n: no message ${key}`);
    return key;
  }
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}

export function setLanguage(next) {
  if (!LANGUAGES.includes(next) || next === current) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
  translatePage(document);
  for (const listener of listeners) listener(next);
}

/** Call `listener` after every change of language (to redraw what was built with t()). */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Fill the static text of the page from data-i18n attributes. */
export function translatePage(root) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  for (const element of root.querySelectorAll("[data-i18n-aria-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nAriaLabel));
  }
}
