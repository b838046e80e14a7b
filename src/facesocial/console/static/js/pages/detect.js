// Placeholder until this view is written.
import { el } from "../ui.js";

export default {
  path: "detect",
  title: "Detect",
  render(root) {
    root.append(el("p", {}, "Not written yet."));
  },
};
