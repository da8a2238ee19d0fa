//! `freezefuzz check` and loading of workspaces for the other subcommands.
