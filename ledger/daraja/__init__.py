"""Safaricom Daraja (M-Pesa) API: typed models, the aiohttp client and a local simulator of the API."""
