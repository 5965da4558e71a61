"""The pure core: decisions, tokens, codes and flows with no I/O and no framework imports."""
