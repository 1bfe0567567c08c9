"""The conversation WebSocket in the ElevenLabs Conversational AI event format (its text subset)."""
