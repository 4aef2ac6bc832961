"""`make demo`: the whole system on a laptop. AWS is moto, OpenAI is the stand-in, everything on 127.0.0.1."""
