"""`carehub serve`: the Flask app under gunicorn, a production WSGI server."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from app import create_app


class CarehubServer(BaseApplication):
    """gunicorn with our options; each worker process builds its own app and pool."""

    def __init__(self, options: dict[str, object]):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app()


def serve(host: str, port: int, workers: int, threads: int) -> None:
    CarehubServer(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": "-",
            "errorlog": "-",
            "graceful_timeout": 20,
            "proc_name": "carehub",
            # gunicorn's runtime control socket sits at one fixed path per user, so a second
            # server on the machine would collide with it; carehub is managed by signals.
            "control_socket_disable": True,
        }
    ).run()
