"""The comparison report: metrics, grids and curves of every model, as HTML and Markdown."""
