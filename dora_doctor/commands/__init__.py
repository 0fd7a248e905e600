"""One thin module per subcommand: parse the arguments, call the library, print."""
