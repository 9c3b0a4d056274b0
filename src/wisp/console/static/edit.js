// The create / edit page: Ace takes the textarea's place; the form still posts the
// textarea, which the editor keeps up to date. Without this script the textarea works.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const area = document.getElementById("code");
  const box = document.getElementById("editor");
  const kind = document.getElementById("kind");
  if (!area || !box || !window.ace) return;
  // Strict CSP: the styles come from /ui/static/editor/*.css, not injected <style> tags.
  window.ace.config.set("useStrictCSP", true);
  window.ace.config.set("basePath", "/ui/static/editor");
  const editor = window.ace.edit(box, {
    value: area.value,
    mode: "ace/mode/" + area.dataset.mode,
    theme: "ace/theme/textmate",
    useWorker: false,
    tabSize: 4,
    useSoftTabs: true,
    minLines: 18,
    maxLines: 40,
    fontSize: "13px",
  });
  box.hidden = false;
  area.hidden = true;
  editor.session.on("change", () => { area.value = editor.getValue(); });
  kind.addEventListener("change", () => {
    const mode = kind.selectedOptions[0].dataset.mode;
    editor.session.setMode("ace/mode/" + mode);
  });
  window.wispEditor = editor;  // for tests and the curious
});
