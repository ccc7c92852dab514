"""Understanding what a candidate says: one component shared by the interviewer (what the turn asks for,
how well an answer addresses the question) and by scoring (what an answer is worth against the factor's
anchors). Built on a real sentence-embedding model (all-MiniLM-L6-v2, int8 ONNX, run offline by
onnxruntime), a date parser for callback times, and rules only where they are clearer."""
