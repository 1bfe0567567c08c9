"""Server tools for an ElevenLabs agent (`POST /v1/tools/{name}`) and the agent definition built from them."""
