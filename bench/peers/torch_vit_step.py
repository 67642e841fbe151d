"""PyTorch peer of lnlab's `vit` model at its default size: 28x28x1 images, patch 7 (16 patches
plus a class token = 17 tokens), dimension 64, 4 pre-norm blocks (nn.TransformerEncoderLayer with
norm_first=True, batch_first=True, 4 heads, MLP 256 with exact GELU, no dropout), a final
LayerNorm, the class token to a linear head; batch 128, SGD lr 0.05 momentum 0.9, softmax
cross-entropy, random inputs, on the CPU. The workload of `LabelNoiseLab.Bench vit-step`.

Run: OMP_NUM_THREADS=2 /usr/bin/python3 bench/peers/torch_vit_step.py [--steps 60]
Prints the training time per step (after 10 warm-up steps) and the 60,000-sample epoch
extrapolated from it, as epoch_s=.
"""
import argparse, time
import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=60)
ap.add_argument("--dim", type=int, default=64)
ap.add_argument("--depth", type=int, default=4)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--patch", type=int, default=7)
a = ap.parse_args()
torch.manual_seed(0)


class ViT(nn.Module):
    def __init__(self, size=28, channels=1, classes=10, patch=7, dim=64, depth=4, heads=4, mlp_ratio=4):
        super().__init__()
        tokens = (size // patch) ** 2 + 1
        self.patch_embed = nn.Conv2d(channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, heads, dim * mlp_ratio, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True),
            depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(t))[:, 0])


m = ViT(patch=a.patch, dim=a.dim, depth=a.depth, heads=a.heads)
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
xb = torch.randn(128, 1, 28, 28)
yb = torch.randint(0, 10, (128,))


def step():
    opt.zero_grad()
    F.cross_entropy(m(xb), yb).backward()
    opt.step()


for _ in range(10):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
dt = (time.perf_counter() - t0) / a.steps
print(f"step_ms={dt * 1e3:.1f} epoch_s={dt * 60000 / 128:.1f} params={sum(p.numel() for p in m.parameters())} threads={torch.get_num_threads()}")
