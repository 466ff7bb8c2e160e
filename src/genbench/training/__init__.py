"""Only the training loop every family shares (engine.py), its checkpoints (resume.py), what it
logs (progress.py), DDP (runtime.py), and one family's whole training as a stage runs it (run.py).
"""
