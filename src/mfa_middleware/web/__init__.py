"""Framework-neutral HTTP: request facts, responses, the gate and the built-in pages."""
