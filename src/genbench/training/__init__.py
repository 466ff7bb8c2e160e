"""The shared training engine (engine.py) and one step function per family (gan.py, vae.py)."""
