"""HTTP entry point: the FastAPI application, its error handling and shared dependencies."""
