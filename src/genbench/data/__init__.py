"""Datasets: where images come from (sources.py), downloading them (download.py) and turning them
into the prepared store (preprocess.py). Reading the store is core/store.py: every stage needs it.
"""
