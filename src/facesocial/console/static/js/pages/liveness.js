// Placeholder until this view is written.
import { el } from "../ui.js";

export default {
  path: "liveness",
  title: "Liveness",
  render(root) {
    root.append(el("p", {}, "Not written yet."));
  },
};
