"""The dialogue's handlers, by concern: each takes the `Turn` and the event, changes the state and asks for
actions. Which handler runs for which phase and event is the table (`voice_server/dialogue/table.py`)."""
