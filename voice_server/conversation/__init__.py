"""The I/O edge of the conversation: voice sessions in PostgreSQL and the driver that runs one turn."""
