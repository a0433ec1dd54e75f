import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the page on :5173 and forwards the realtime and health
// routes to an iorelay running on :3000, so the page can use its own origin.
const iorelay = "http://localhost:3000";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/socket.io": { target: iorelay, ws: true },
      "/healthz": { target: iorelay },
      "/ws": { target: iorelay, ws: true },
    },
  },
  build: {
    chunkSizeWarningLimit: 1500,
    // Two pages: the Socket.IO demo, and the same features over the browser's own WebSocket
    // (paths relative to client-demo/, where `npm run build` runs).
    rolldownOptions: {
      input: { main: "index.html", plain: "plain.html" },
    },
  },
});
