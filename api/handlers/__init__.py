"""HTTP handlers: parse → call a use case → map the outcome to an answer. No logic here."""
