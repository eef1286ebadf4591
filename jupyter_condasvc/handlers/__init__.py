"""HTTP and WebSocket handlers under ``{base_url}condasvc/``, thin by design.

Each verb parses the request, awaits one domain call and writes JSON; the
base class maps domain errors to statuses in one place.  Every verb is
authenticated and ``@authorized`` against the ``condasvc`` resource.
"""

from . import doctor, environment, events, hosts, logs, runs, services

default_handlers = [
    *logs.handlers,
    *runs.handlers,
    *events.handlers,
    *environment.handlers,
    *doctor.handlers,
    *hosts.handlers,
    *services.handlers,
    # last: the rest of condasvc/api/ answers a JSON 404, not tornado's HTML page
    (r"/condasvc/api/.*", services.UnknownRouteHandler),
]
