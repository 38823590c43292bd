# The Flask example of the article "Implementing Server-Sent Events (SSE)
# with Python and Go", as the article gives it (indentation restored). Two
# changes, for tests: the host is 127.0.0.1 and the port comes from argv
# (or PORT), so that a test picks a free one; debug mode stays on, without
# its reloader, which would run the server in a second process.
import os
import sys

from flask import Flask, Response
app = Flask(__name__)

@app.route('/events')
def sse_handler():
    def generate():
        paragraph = [
            "Hello, this is an example of a continuous text output.",
            "It contains multiple sentences, each of which will be sent to the client as an event.",
            "This is to simulate the functionality of Server-Sent Events (SSE).",
            "We can use this method to push real-time updates.",
            "End of sample text, thank you!",
        ]
        for sentence in paragraph:
            yield f"data: {sentence}\n\n"
            import time
            time.sleep(1)
    return Response(generate(), mimetype='text/event-stream')

if __name__ == '__main__':
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get('PORT', '8081'))
    app.run(host='127.0.0.1', port=port, debug=True, use_reloader=False)
