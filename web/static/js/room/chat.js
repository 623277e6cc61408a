// The chat: the history given on joining, messages as they come (as text, never markup), the
// unread count while the chat is hidden, sending, and showing or hiding the panel.

import { t, formatTime } from "../i18n.js";
import { el, setLabel } from "../dom.js";
import { session, isMe } from "./state.js";
import { say } from "./status.js";

const $ = (id) => document.getElementById(id);

let unread = 0; // messages arrived while the chat was hidden

export function renderChatHistory(messages) {
  $("chat-log").replaceChildren();
  for (const m of messages) appendChat(m, true);
}

export function appendChat(message, history = false) {
  const log = $("chat-log");
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const li = el("li", { class: "chat-message" + (message.from && isMe(message.from) ? " mine" : "") },
    el("p", { class: "chat-meta" },
      el("span", { class: "chat-name" }, message.name || ""),
      message.unit && message.unit !== message.name ? el("span", { class: "chat-unit" }, message.unit) : "",
      el("time", { datetime: message.at || "" }, formatTime(message.at))),
    el("p", { class: "chat-text" }, message.text || ""));
  if (message.id) li.dataset.chatId = String(message.id);
  log.append(li);
  if (nearBottom || history || (message.from && isMe(message.from))) log.scrollTop = log.scrollHeight;
  if (!history && $("chat").hidden) {
    unread += 1;
    const badge = $("chat-unread");
    badge.textContent = String(unread);
    badge.hidden = false;
  }
}

export function setupChat() {
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text || !session.signalling) return;
    if (session.signalling.send({ type: "chat", text: text.slice(0, 2000) })) input.value = "";
    else say(t("The message was not sent: the connection is being restored."), "problem");
  });
  $("chat-toggle").addEventListener("click", () => {
    const chat = $("chat");
    chat.hidden = !chat.hidden;
    $("chat-toggle").setAttribute("aria-pressed", String(!chat.hidden));
    if (!chat.hidden) {
      unread = 0;
      $("chat-unread").hidden = true;
      $("chat-input").focus();
    }
  });
  setLabel($("chat-toggle"), t("Chat"));
  $("chat-toggle").title = t("Show or hide the chat");
}
