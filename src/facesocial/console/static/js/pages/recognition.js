// Placeholder until this view is written.
import { el } from "../ui.js";

export default {
  path: "recognition",
  title: "Recognition",
  render(root) {
    root.append(el("p", {}, "Not written yet."));
  },
};
