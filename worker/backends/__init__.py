"""Which backends this machine has: GPU generations, proof by real encodes, its reuse."""
