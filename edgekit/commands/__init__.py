"""One module per ``edgekit`` subcommand: HELP, add_arguments(parser), run(args) -> int."""
