"""The emotion-export command line and its subcommands."""
