"""goTalk over WebSocket: a placeholder of the package's second module.

The package (pyproject.toml) lists this module beside gotalk_client; its
WebSocket transport comes with the server's WebSocket door. Until then it
holds nothing, and importing it only shows that the package installed it.
"""
