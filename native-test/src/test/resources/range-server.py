# A loopback file server for the pull tests: Range requests, a download cut once mid-way
# (/cut/NAME), and a slow one (/slow/NAME) to kill a pull in the middle. Usage: PORT DIR LOG
import http.server, os, sys, time

port, root, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cut_done = set()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        mode, name = (parts[0], parts[1]) if len(parts) == 2 else ("plain", parts[0])
        path = os.path.join(root, os.path.basename(name))
        rng = self.headers.get("Range", "")
        with open(log, "a") as f:
            f.write(f"{self.path} {rng}\n")
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        start = int(rng[len("bytes="):].split("-")[0]) if rng.startswith("bytes=") else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            sent = 0
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                if mode == "cut" and name not in cut_done and sent + start >= size // 2:
                    cut_done.add(name)
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                if mode == "slow":
                    time.sleep(0.05)

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
