"""Files into documents: decoding, text extraction per file type, rows of CSV and JSON Lines.

`read_file` (reader.py) is the entry point; `collect_files` (walk.py) finds the files of
folders. Every failure is an `UnreadableFile` with a reason meant for the person who sent it.
"""
