"""What the families share: the `Family` record (base.py), the size rules their networks follow
(sizes.py) and a trained model's folder (model_dir.py). No family's own code lives here."""
