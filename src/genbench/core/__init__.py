"""The ground floor every stage stands on, listed in dvc.yaml as one folder: errors, files and
their names (layout), the metric registry, the typed records stages hand each other, the prepared
data store, seeds, devices, checkpoints and pixels. It imports nothing else of genbench."""
