"""Chapter 09's own fixture: a second live server, started with Socket.IO's logs switched on."""
import pytest

from tutorial.servers import ChapterServer


@pytest.fixture(scope="module")
def verbose_server(server):
    """``app.py`` with SOCKETIO_LOGGER=1 and a 1-second answer timeout, in the same async mode as ``server``."""
    env = {"SOCKETIO_LOGGER": "1", "FLASK_ANSWER_TIMEOUT": "1"}
    with ChapterServer(server.folder.name, server.async_mode, env=env) as running:
        yield running
