def handle(event, context):
    """Answers one request.

    event.body is bytes; event.headers, event.query are dicts; event.method
    and event.path are strings. Return a string, or a dict with statusCode,
    body and headers.
    """
    name = event.query.get("name") or "faas-criu"
    return {
        "statusCode": 200,
        "body": "Hello, %s! You sent %d bytes.\n" % (name, len(event.body)),
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
    }
