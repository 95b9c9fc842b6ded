// A websocket that reconnects with backoff, except when the server says "not yours".
const FORBIDDEN = new Set([4401, 4403]);

export function liveSocket(path, onMessage, onOpen) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let delay = 500;
  let socket = null;
  const handle = {
    send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    },
    close() { handle.closed = true; if (socket) socket.close(); },
    closed: false,
  };
  function connect() {
    socket = new WebSocket(`${scheme}://${location.host}${path}`);
    socket.onopen = () => { delay = 500; if (onOpen) onOpen(handle); };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data), handle);
    socket.onclose = (event) => {
      if (handle.closed || FORBIDDEN.has(event.code)) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 8000);
    };
  }
  connect();
  return handle;
}
