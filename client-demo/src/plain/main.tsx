import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App as AntApp, ConfigProvider } from "antd";
import PlainApp from "./PlainApp";
import "../index.css";

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ConfigProvider theme={{ token: { colorPrimary: "#1668dc", borderRadius: 8 } }}>
        <AntApp>
          <PlainApp />
        </AntApp>
      </ConfigProvider>
    </StrictMode>,
  );
}
