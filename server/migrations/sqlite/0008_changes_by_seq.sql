-- A document's changes in log order: catching a cached document up from
-- its last change, and finding a document's last change, read only the
-- rows after it instead of every change of the document (issue 13).
CREATE INDEX changes_by_document_seq ON changes (document_id, seq);
