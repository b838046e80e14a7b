// Placeholder until this view is written.
import { el } from "../ui.js";

export default {
  path: "keys",
  title: "API keys & usage",
  render(root) {
    root.append(el("p", {}, "Not written yet."));
  },
};
