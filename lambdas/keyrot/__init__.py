"""keyrot: rotation, monitoring and safe delivery of OpenAI API keys on AWS."""

__version__ = "0.1.0"
