"""auto-creator-v2: imports approved question sets (and their questions) into the graph and
external stores."""
