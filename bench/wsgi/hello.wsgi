# The same 12-byte answer from a WSGI application, for mod_wsgi's embedded and daemon modes.
def application(environ, start_response):
    body = b"Hello World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
