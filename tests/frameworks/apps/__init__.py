"""One small real app per framework, all answering the same routes (see `common`)."""
