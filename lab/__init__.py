"""Local stand-ins and drivers for tests, the demo and benchmarks. Never packaged into the Lambda archive."""
