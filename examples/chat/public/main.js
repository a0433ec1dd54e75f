// The chat page. It talks to whichever server served it: `io()` without a URL connects to the
// page's own origin, so the same file works against Node socket.io and against iorelay.
"use strict";

/** How long after the last keystroke the page tells the others that typing stopped. */
const TYPING_IDLE_MS = 600;
const NAME_COLORS = ["#c0392b", "#d35400", "#b7950b", "#27ae60", "#16a085", "#2980b9", "#8e44ad", "#7f8c8d"];

const loginView = document.getElementById("login");
const loginForm = document.getElementById("login-form");
const usernameInput = document.getElementById("username-input");
const chatView = document.getElementById("chat");
const userCount = document.getElementById("user-count");
const statusLine = document.getElementById("status");
const entries = document.getElementById("entries");
const messageForm = document.getElementById("message-form");
const messageInput = document.getElementById("message-input");

/** The nickname once the user has picked one; the page re-sends it after a reconnection. */
let username = null;
let typing = false;
let typingTimer = null;

const socket = io();

// ---- rendering -------------------------------------------------------------------------------

function colorOf(name) {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return NAME_COLORS[hash % NAME_COLORS.length];
}

function append(item) {
  const atBottom = entries.scrollHeight - entries.scrollTop - entries.clientHeight < 40;
  entries.append(item);
  if (atBottom) entries.scrollTop = entries.scrollHeight;
}

/** A centred line about the chat itself: joins, leaves, the count, announcements. */
function addLog(text, { testId = "log", className = "" } = {}) {
  const item = document.createElement("li");
  item.className = `log ${className}`.trim();
  item.dataset.testid = testId;
  item.textContent = text;
  append(item);
}

function messageItem(name, body, testId) {
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.testid = testId;
  item.dataset.username = name;
  const who = document.createElement("span");
  who.className = "username";
  who.dataset.testid = "message-username";
  who.style.color = colorOf(name);
  who.textContent = name;
  const text = document.createElement("span");
  text.className = "body";
  text.dataset.testid = "message-body";
  text.textContent = body;
  item.append(who, text);
  return item;
}

function addMessage(name, body) {
  removeTypingNotice(name);
  append(messageItem(name, body, "message"));
}

function typingNotices(name) {
  return [...entries.querySelectorAll('[data-testid="typing"]')].filter((item) => item.dataset.username === name);
}

function addTypingNotice(name) {
  if (typingNotices(name).length > 0) return;
  const item = messageItem(name, "is typing…", "typing");
  item.classList.add("typing");
  append(item);
}

function removeTypingNotice(name) {
  for (const item of typingNotices(name)) item.remove();
}

function showCount(numUsers) {
  userCount.textContent = numUsers === 1 ? "1 participant" : `${numUsers} participants`;
  addLog(numUsers === 1 ? "there is 1 participant" : `there are ${numUsers} participants`);
}

function setStatus(text) {
  statusLine.textContent = text;
}

// ---- what the user does ----------------------------------------------------------------------

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = usernameInput.value.trim();
  if (!name) return;
  username = name;
  loginView.hidden = true;
  chatView.hidden = false;
  messageInput.focus();
  // Not connected yet: the "connect" handler logs in once the socket is up.
  if (socket.connected) socket.emit("add user", username);
});

messageForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const message = messageInput.value.trim();
  if (!message || !socket.connected) return;
  messageInput.value = "";
  addMessage(username, message);
  socket.emit("new message", message);
  stopTyping();
});

messageInput.addEventListener("input", () => {
  if (!socket.connected) return;
  if (!typing) {
    typing = true;
    socket.emit("typing");
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
});

function stopTyping() {
  clearTimeout(typingTimer);
  if (!typing) return;
  typing = false;
  socket.emit("stop typing");
}

// ---- what the server says --------------------------------------------------------------------

socket.on("connect", () => {
  setStatus("connected");
  // A name picked before the socket was up, or a reconnection (the server sees a new socket):
  // log in under that name.
  if (username) socket.emit("add user", username);
});

socket.on("disconnect", (reason) => {
  setStatus(`disconnected (${reason})`);
  addLog("you have been disconnected");
  typing = false;
});

socket.on("connect_error", (error) => {
  setStatus(`cannot connect: ${error.message}`);
});

socket.on("login", ({ numUsers }) => {
  addLog(`Welcome, ${username}`, { className: "welcome" });
  showCount(numUsers);
});

socket.on("user joined", ({ username: name, numUsers }) => {
  addLog(`${name} joined`);
  showCount(numUsers);
});

socket.on("user left", ({ username: name, numUsers }) => {
  removeTypingNotice(name);
  addLog(`${name} left`);
  showCount(numUsers);
});

socket.on("new message", ({ username: name, message }) => addMessage(name, message));
socket.on("typing", ({ username: name }) => addTypingNotice(name));
socket.on("stop typing", ({ username: name }) => removeTypingNotice(name));

socket.on("announcement", ({ text }) => {
  addLog(`Announcement: ${text}`, { testId: "announcement", className: "announcement" });
});
