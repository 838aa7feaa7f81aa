"""Container images of the variants: base inspection, input-addressed cache, build, smoke."""
