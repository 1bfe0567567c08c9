"""The conversation as a pure state machine: `(state, event, now) -> (new state, actions)`, no I/O."""
