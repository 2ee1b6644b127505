"""One module per ``yibao`` subcommand (see yibao.dsl.cli)."""
