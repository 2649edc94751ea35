"""Pure figure builders: data in, ``go.Figure`` out; unit-tested without a browser."""
