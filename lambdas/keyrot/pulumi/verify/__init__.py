"""`make verify-aws`: check, in a real AWS account and OpenAI project, what this repository cannot check offline."""
