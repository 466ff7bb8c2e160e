"""Typed params: one pydantic model per params.yaml section (see base.load_params)."""
