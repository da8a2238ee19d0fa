//! The policy language: pest grammar → AST with spans → checked IR.
